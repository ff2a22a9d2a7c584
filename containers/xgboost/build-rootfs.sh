#!/bin/bash
# build-rootfs.sh OUT.tar: debootstraps a minimal Debian bookworm with
# python3-xgboost, python3-sklearn and python3-pandas from deb.debian.org
# (no container registry involved) and writes it as a root file system
# tarball to OUT.tar, for `kiln images import`. Needs root and debootstrap
# (installed with apt-get when missing). The tarball is written under a
# temporary name and renamed, so a failed run never leaves half of one.
set -euo pipefail

out=${1:?usage: build-rootfs.sh OUT.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3-xgboost,python3-sklearn,python3-pandas
rootfs=${out%.tar}

if [[ $(id -u) != 0 ]]; then
	echo "build-rootfs.sh: debootstrap needs root (run make image-xgboost as root)" >&2
	exit 1
fi
if ! command -v debootstrap >/dev/null; then
	echo "build-rootfs.sh: installing debootstrap" >&2
	apt-get install -y debootstrap
fi

# A debootstrap that was interrupted may leave /proc or /sys mounted inside
# the old rootfs: unmount them before removing it.
unmount_all() {
	local abs
	abs=$(realpath -m "$rootfs")
	awk -v r="$abs/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m"
	done
}
unmount_all
rm -rf --one-file-system "$rootfs"
mkdir -p "$(dirname "$out")"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror"

# Slim it down: package caches and lists, docs, man pages, locales.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/* "$rootfs"/usr/share/doc/* \
	"$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C*' -exec rm -rf {} +
# Check the packages import before shipping the image.
chroot "$rootfs" /usr/bin/python3 -c 'import xgboost, sklearn, pandas, numpy; print("xgboost", xgboost.__version__, "scikit-learn", sklearn.__version__)'

unmount_all
tar --numeric-owner --one-file-system -C "$rootfs" -cf "$out.tmp" .
mv "$out.tmp" "$out"
rm -rf --one-file-system "$rootfs"
echo "wrote $out ($(du -h "$out" | cut -f1))"
