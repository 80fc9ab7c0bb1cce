#!/usr/bin/env bash
# Installs the system packages the project needs on Debian 12/13 (run as root):
#   - Mesa >= 25 lavapipe Vulkan driver so ManiSkill/SAPIEN renders on the CPU
#     (Debian 12's own Mesa 22.3 is too old; bookworm-backports has 25),
#   - Chromium for the browser tests and screenshots.
# Idempotent: re-running it installs nothing new.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
. /etc/os-release
need_update=1
if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  src=/etc/apt/sources.list.d/bookworm-backports.list
  if [ ! -f "$src" ]; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee "$src" >/dev/null
  fi
  $SUDO apt-get update -qq; need_update=0
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
    mesa-vulkan-drivers libvulkan1 >/dev/null
fi
[ "$need_update" -eq 0 ] || $SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  mesa-vulkan-drivers libvulkan1 libegl1 libgl1 chromium >/dev/null
echo "system packages ready: $(dpkg-query -W -f='mesa-vulkan-drivers ${Version}' mesa-vulkan-drivers)"
