# Installs what building llama.cpp needs, if missing: cmake and a C++
# toolchain for the library, libclang (with clang's built-in headers) for
# bindgen; pip for fetching models; tmux for the UI's end-to-end tests. Sourced by scripts/start and scripts/test.

install_prerequisites() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v g++ >/dev/null 2>&1 || missing+=(g++)
    dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    # The end-to-end tests drive the UI in a real terminal.
    command -v tmux >/dev/null 2>&1 || missing+=(tmux)
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "whet: installing build prerequisites: ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "whet: please install as root: apt-get install ${missing[*]}" >&2
            return 1
        fi
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The data directory whet uses (the same rule as the `directories` crate).
whet_data_dir() {
    echo "${WHET_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/whet}"
}
