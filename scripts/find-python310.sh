#!/usr/bin/env bash
# Print the path of a Python 3.10 interpreter, or explain what to install and fail.
# Rasa Open Source 3.6 runs on Python 3.8-3.10 only; on 3.11 `pip install rasa`
# silently resolves to the ancient rasa 1.10, so we refuse anything but 3.10.
set -u
candidates=()
[ -n "${PYTHON310:-}" ] && candidates+=("$PYTHON310")
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for dir in "$pyenv_root"/versions/3.10*/bin; do
  [ -x "$dir/python3.10" ] && candidates+=("$dir/python3.10")
done
if command -v python3.10 >/dev/null 2>&1; then candidates+=("$(command -v python3.10)"); fi
if command -v python3 >/dev/null 2>&1; then candidates+=("$(command -v python3)"); fi
for candidate in "${candidates[@]}"; do
  version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
  if [ "$version" = "3.10" ]; then
    echo "$candidate"
    exit 0
  fi
done
# printf is a shell builtin: the message shows even on a bare PATH
printf '%s\n' >&2 \
  'ERROR: Python 3.10 was not found.' \
  '  Rasa Open Source 3.6.21 needs Python 3.10 (3.8-3.10); the default python3 here is' \
  '  too new, and `pip install rasa` on it silently installs rasa 1.10.' \
  '  Install Python 3.10, for example:' \
  '    pyenv install 3.10.13                       (pyenv; this project pins .python-version)' \
  '    apt-get install python3.10 python3.10-venv  (Debian/Ubuntu, where packaged)' \
  '  or point PYTHON310=/path/to/python3.10 at an existing interpreter.'
exit 1
