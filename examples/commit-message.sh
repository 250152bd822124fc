#!/usr/bin/env sh
# Write a commit message for the staged changes with DeepSeek (v3: deepseek-flash, thinking off) and open it in the editor.
# Reasoning never reaches the pipe; errors go to stderr and the exit code says what happened.
set -eu
msg=$(mktemp)
git diff --cached | modelswitch ask -m "${MODEL:-v3}" \
  "Write a concise git commit message (summary line, blank line, body) for this diff." > "$msg"
git commit -e -F "$msg"
rm -f "$msg"
