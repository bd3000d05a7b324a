#!/usr/bin/env bash
# Build the MONAI Label environment of monai_fewshot: a separate virtual environment (default .venv-label at
# the repository root), because monailabel 0.8.5 needs torchvision and older DICOM pins than the core
# package (DESIGN.md section 7). Idempotent: a working environment built from this same script is kept.
#
#   monai_fewshot/apps/setup_env.sh [VENV_DIR]        # or MONAI_FEWSHOT_LABEL_VENV=DIR
#
# Everything comes through pip from the configured package index (PyPI); nothing else is downloaded.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$(realpath -m "${1:-${MONAI_FEWSHOT_LABEL_VENV:-$REPO/.venv-label}}")"  # absolute: it is written into a .pth
PYTHON="${PYTHON:-python3}"
PINS=(torch==2.14.1 torchvision==0.29.1 monailabel==0.8.5 monai==1.6.1 "pydicom<3" "pynetdicom<3" "dicomweb-client<0.60"
      "jsonschema<4")  # pydicom-seg (monailabel's) needs jsonschema<4; the app does not use jsonschema
STAMP="$VENV/.monai_fewshot_label_env"
WANT="$(cat "${BASH_SOURCE[0]}" "$REPO/pyproject.toml" | sha256sum | cut -c1-16)"

works() {
    [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
        && (cd / && "$VENV/bin/python" -c "import torchvision, monailabel.interfaces.app, monai_fewshot.inferers") 2>/dev/null
}

if works; then
    echo "MONAI Label environment ready: $VENV"
    exit 0
fi

echo "Building the MONAI Label environment in $VENV (several minutes, about 8 GB)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet)
"${PIP[@]}" install --upgrade pip
CONSTRAINTS="$VENV/pins.txt"
printf '%s\n' "${PINS[@]}" > "$CONSTRAINTS"
"${PIP[@]}" install torch==2.14.1 torchvision==0.29.1            # first, so nothing picks another torch
"${PIP[@]}" install -c "$CONSTRAINTS" "${PINS[@]}"
# the core package's requirements that monailabel did not bring, without moving the pins (jsonschema: see PINS)
"$VENV/bin/python" - "$REPO/pyproject.toml" > "$VENV/core-requirements.txt" <<'PY'
import re, sys
try:
    import tomllib
    with open(sys.argv[1], "rb") as f:
        requirements = tomllib.load(f)["project"]["dependencies"]
except ImportError:  # Python 3.10: the quoted items of `dependencies = [...]`
    text = open(sys.argv[1]).read()
    requirements = re.findall(r'"([^"]+)"', re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1))
print("\n".join(r for r in requirements if not r.startswith("jsonschema")))
PY
"${PIP[@]}" install -c "$CONSTRAINTS" -r "$VENV/core-requirements.txt"
# monai_fewshot itself: the repository's package folder on the path, through a link in a folder of its own
# and a .pth file. Not an editable install: its metadata would declare jsonschema>=4 and fail `pip check`
# (and the repository root holds the core venv's monai_fewshot.egg-info, which pip would read the same way).
mkdir -p "$VENV/src"
ln -sfn "$REPO/monai_fewshot" "$VENV/src/monai_fewshot"
SITE="$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
rm -f "$SITE/monai_fewshot_repo.pth" "$SITE"/__editable__*monai_fewshot* "$SITE"/monai_fewshot-*.dist-info -r
echo "$VENV/src" > "$SITE/monai_fewshot_src.pth"
# pip 24.1+ stops `pip check` at itk 5.4's malformed wheel tag ("itk-5.4.7-cp311-abi3-..."); 24.0 checks it
"${PIP[@]}" install "pip==24.0"
"$VENV/bin/python" -m pip check
(cd / && "$VENV/bin/python" -c "import torchvision, monailabel.interfaces.app, monai_fewshot.inferers")  # from elsewhere: the .pth, not the cwd
echo "$WANT" > "$STAMP"
echo "MONAI Label environment ready: $VENV"
