#!/usr/bin/env bash
# Build livereduce's RPM:  bash rpm/build.sh OUTDIR [--head] [RPMBUILD_ARGS...]
#
# Leaves python-livereduce-<version>-<release>.noarch.rpm and the .src.rpm in OUTDIR.
#
# The source tarball holds the files git knows (tracked, and untracked but not ignored) as they are in the
# working tree, so uncommitted packaging work is what gets built; --head packages `git archive HEAD` instead
# (for a release). Outside a git checkout: the directory, less .git, virtual environments, caches and outputs.
# The version is livereduce/__init__.py's __version__ (of the packaged tree). rpmbuild runs with a temporary
# %_topdir; where Fedora's macros are missing (%pyproject_wheel undefined: Debian, Ubuntu) it loads
# rpm/macros.offfedora and skips the build-dependency check (--nodeps).
# RPMBUILD_ARGS go to rpmbuild, e.g. --define "release_number 2". Off Fedora, PYTHON (default: python3 on
# PATH; it needs pip) builds and installs the wheel.
set -euo pipefail

usage() { echo "usage: bash rpm/build.sh OUTDIR [--head] [RPMBUILD_ARGS...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -*) usage ;; esac
outdir="$1"
shift
from_head=0
if [ "${1:-}" = "--head" ]; then
    from_head=1
    shift
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
command -v rpmbuild >/dev/null || { echo "rpmbuild not found (Fedora/RHEL: dnf install rpm-build; Debian: apt-get install rpm)" >&2; exit 1; }

top="$(mktemp -d "${TMPDIR:-/tmp}/livereduce-rpm.XXXXXX")"
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}

version_of() { grep '^__version__ = ' | head -n 1 | cut -d'"' -f2; }

cd "$repo"
in_git=0
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && [ "$(git rev-parse --show-toplevel)" = "$repo" ]; then
    in_git=1
fi
if [ "$from_head" = 1 ]; then
    [ "$in_git" = 1 ] || { echo "--head needs a git checkout" >&2; exit 2; }
    version="$(git show HEAD:livereduce/__init__.py | version_of)"
else
    version="$(version_of < livereduce/__init__.py)"
fi
[ -n "$version" ] || { echo "no __version__ = \"...\" line in livereduce/__init__.py" >&2; exit 1; }
name="livereduce-$version"
tarball="$top/SOURCES/$name.tar.gz"

if [ "$from_head" = 1 ]; then
    git archive --format=tar.gz --prefix="$name/" -o "$tarball" HEAD
elif [ "$in_git" = 1 ]; then
    # every file git knows that exists (a tracked file deleted in the working tree is left out)
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar -czf "$tarball" --null --no-recursion -T - --transform "s,^,$name/,"
else
    tar -czf "$tarball" --exclude=.git --exclude=.venv --exclude=__pycache__ --exclude='*.pyc' \
        --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.mypy_cache --exclude=.hypothesis \
        --exclude=dist --exclude=build --exclude=demo-output --exclude=livereduce-state \
        --exclude='livereduce.log*' --transform "s,^\.,$name," .
fi
# the spec of the packaged tree, named after its package (as rpmlint expects of the one in the .src.rpm)
tar -xzOf "$tarball" "$name/rpm/livereduce.spec" > "$top/SPECS/spec"
spec="$top/SPECS/$(sed -n 's/^Name:[[:space:]]*//p' "$top/SPECS/spec" | head -n 1).spec"
mv "$top/SPECS/spec" "$spec"

args=(--define "_topdir $top" --define "upstream_version $version")
if [ -z "$(rpm --eval '%{?pyproject_wheel:fedora}')" ]; then
    echo "build.sh: Fedora's rpm macros are missing here: using rpm/macros.offfedora, without checking build dependencies"
    args+=(--load "$repo/rpm/macros.offfedora" --nodeps --define "__python3 ${PYTHON:-python3}")
fi
rpmbuild -ba "${args[@]}" "$@" "$spec"

find "$top/RPMS" "$top/SRPMS" -name '*.rpm' -exec cp -f {} "$outdir/" \;
echo "build.sh: built into $outdir:"
find "$top/RPMS" "$top/SRPMS" -name '*.rpm' -exec basename {} \; | sed 's/^/  /'
