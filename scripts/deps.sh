#!/bin/sh
# deps.sh — installs what building and testing troupe needs on Debian
# (run as root).  Kept in one place so that the README and CI agree.
# netcat-openbsd: the README's first command talks to kvd with `nc -N`.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq build-essential autoconf automake libtool pkg-config \
    libev-dev libjansson-dev check valgrind netcat-openbsd >/dev/null
echo "deps: installed build-essential autotools libev-dev libjansson-dev check valgrind netcat-openbsd"
