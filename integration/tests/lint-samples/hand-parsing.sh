#!/usr/bin/env bash
# A deliberately bad CI script: it reads the gate file, the reports and the JUnit file by hand
# and hard-codes the gate file's operations, each of which `smoke` answers.
mapfile -t files < <(python3 - "$1" <<'PY'
import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["compose_files"])
PY
)
jq -r '.checks[].name' target/gate/x/report.json
python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['phases'][0]['duration_ms'])" "$f"
python3 -c '
import xml.etree.ElementTree as ET; ET.parse("target/nextest/ci/junit.xml")'
# A comment may say python manage.py migrate; only commands count.
echo "${files[@]}"
docker compose run --rm -T backend python manage.py migrate --noinput
docker compose exec -T -e SMOKE_STAFF_TOKEN backend python manage.py ensure_staff smoke
docker compose exec -T backend python manage.py showmigrations --plan
docker compose run --rm -T backend python manage.py smoke_fixtures --run-id bench
