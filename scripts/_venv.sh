# Sourced by scripts/demo and scripts/test: install livereduce (with the extras in $1) into a virtual
# environment and put it first on PATH. The environment is $LIVEREDUCE_VENV, else the active one
# ($VIRTUAL_ENV), else .venv in the checkout, created on first use (no system site packages, so what runs
# is exactly what pyproject.toml declares).
venv="${LIVEREDUCE_VENV:-${VIRTUAL_ENV:-.venv}}"
if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv"; then
        echo "could not create a virtual environment in $venv: install Python's venv module" \
             "(Debian/Ubuntu: apt-get install python3-venv) or activate an environment first" >&2
        exit 1
    fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".${1:-}"
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
