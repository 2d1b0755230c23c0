#!/usr/bin/env bash
# A deliberately bad script: iterating over `ls` output and an unchecked `cd`.
for f in $(ls *.txt); do
  echo "$f"
done
cd /tmp/somewhere
rm -rf $1/*
