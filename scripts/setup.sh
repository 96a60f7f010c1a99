#!/usr/bin/env bash
# Installs the Debian packages vclab needs, if any is missing. A warm run only asks dpkg-query
# (well under a second); `apt-get update` runs only when something must be installed.
set -eu -o pipefail

PACKAGES=(
    # micro-VM kernel build
    linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev
    # rootfs and initramfs
    busybox-static cpio
    # peers to compare with: OCI runtimes, QEMU
    crun runc qemu-system-x86
    # images: the OCI tools the image tests check the lab's layouts with
    skopeo umoci
    # measuring and namespaces
    hyperfine uidmap iproute2 time jq
    # the report test renders the HTML report
    chromium
)

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Prints the packages of "$@" that are not installed.
missing_packages() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) || status=""
        [ "$status" = installed ] || printf '%s\n' "$pkg"
    done
}

install_packages() {
    local missing=()
    mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
    if [ ${#missing[@]} -eq 0 ]; then
        log "all ${#PACKAGES[@]} Debian packages are installed"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root (run: sudo $0)"
    log "installing ${missing[*]}"
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" </dev/null
    mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
    [ ${#missing[@]} -eq 0 ] || die "still missing after apt-get install: ${missing[*]}"
    log "done"
}

usage() {
    cat <<EOF
Usage: scripts/setup.sh [install|check|help]
  install  install the missing Debian packages (default; needs root)
  check    list the missing packages; exit 1 if any is missing
Packages: ${PACKAGES[*]}
EOF
}

main() {
    case ${1:-install} in
        install) install_packages ;;
        check)
            local missing
            missing=$(missing_packages "${PACKAGES[@]}")
            if [ -n "$missing" ]; then
                log "missing: $(printf '%s' "$missing" | tr '\n' ' ')"
                return 1
            fi
            log "all ${#PACKAGES[@]} Debian packages are installed"
            ;;
        help | -h | --help) usage ;;
        *) usage >&2; die "unknown mode '$1'" ;;
    esac
}

main "$@"
