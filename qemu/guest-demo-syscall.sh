#!/bin/sh
# The demo inside the VM (dirsync.mode=demo), run by qemu/guest-init.sh:
# dirsync_stat(2) answering for a few files, then, once the CLI is staged,
# qemu/guest-demo-cli.sh.
set -u

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "Discovery: $(cd /sys/kernel/dirsync && echo *)"
for f in /sys/kernel/dirsync/*; do
	printf '  %s = %s   (%s)\n' "$f" "$(cat "$f")" "$(stat -c %A "$f")"
done

cd /tmp || exit 1
mkdir -p demo/dir
printf 'hello, dirsync\n' >demo/hello.txt
touch -d '2024-02-29 12:34:56' demo/hello.txt
ln -s hello.txt demo/link
ln -s nowhere demo/dangling

say "dirsync_stat(2) on a few files (the tool: /guest/bin/dirsync-stat)"
for p in demo/hello.txt demo/dir demo/link demo/dangling demo/missing \
	demo/no-such-dir/file /dev/null /; do
	echo "\$ dirsync-stat $p"
	dirsync-stat "$p"
done
echo "\$ dirsync-stat -n demo/link   (AT_SYMLINK_NOFOLLOW)"
dirsync-stat -n demo/link
echo "\$ stat -c '%s %Y %i' demo/hello.txt   (busybox stat: size, mtime, inode, for comparison)"
stat -c '%s %Y %i' demo/hello.txt

if [ -x /guest/bin/dirsync ]; then
	say "The dirsync CLI (qemu/guest-demo-cli.sh)"
	sh /guest/guest-demo-cli.sh
else
	say "(no /guest/bin/dirsync staged: the CLI part of the demo is skipped)"
fi
