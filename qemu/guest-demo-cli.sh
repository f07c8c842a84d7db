#!/bin/sh
# The CLI part of `make demo`, run inside the VM by qemu/guest-demo-syscall.sh:
# dirsync mirroring a tree through dirsync_stat(2), then `dirsync watch`
# following live changes. busybox sh; /guest/bin is on PATH.
set -u

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { echo "\$ $*"; "$@"; }
same() {
	if diff -r "$1" "$2" >/dev/null 2>&1; then
		echo "  => $2 is an exact copy of $1 (diff -r: no difference)"
	else
		echo "  => DIFFERENT:"; diff -r "$1" "$2"
	fi
}

cd /tmp || exit 1
rm -rf src dst
mkdir -p src/docs/notes src/empty
printf 'hello from the VM\n' >src/hello.txt
printf 'line one\nline two\n' >src/docs/readme.md
printf 'a note\n' >src/docs/notes/n1.txt
dd if=/dev/urandom of=src/blob.bin bs=1024 count=512 2>/dev/null
ln -s docs/readme.md src/readme-link
chmod 0750 src/docs/notes

say "One-shot mirror: dirsync -v src dst (the backend line shows the syscall is used)"
run dirsync -v src dst
same src dst

say "Second run on an unchanged tree: nothing to do"
run dirsync -v src dst

say "Edit, delete, add; sync again"
printf 'more\n' >>src/hello.txt
rm src/docs/notes/n1.txt
mkdir src/new && printf 'new file\n' >src/new/file.txt
run dirsync -v src dst
same src dst

say "Real time: dirsync watch -v src dst &"
dirsync watch -v src dst &
pid=$!
sleep 1
echo "\$ echo appended >>src/hello.txt; mkdir -p src/a/b/c; echo deep >src/a/b/c/deep.txt"
echo appended >>src/hello.txt
mkdir -p src/a/b/c
echo deep >src/a/b/c/deep.txt
sleep 1
echo "\$ mv src/docs src/documents; echo later >src/documents/later.txt"
mv src/docs src/documents
echo later >src/documents/later.txt
sleep 1
echo "\$ rm -r src/new"
rm -r src/new
sleep 1
echo "\$ kill -TERM $pid"
kill -TERM "$pid"
wait "$pid"
echo "  watch exited with status $?"
same src dst
echo "\$ find dst | sort"
find dst | sort
