# dirsync: top-level entry points. `make demo` and `make test` work on a
# fresh Debian machine: both install what they need first (scripts/deps.sh).
#
# The kernel build is cached outside the tree, keyed by kernel source
# version + patch series + config (see scripts/build-kernel.sh); set
# DIRSYNC_CACHE to move it (default: ~/.cache/dirsync).

SHELL := /bin/bash
CARGO ?= cargo
USERSPACE := userspace

.PHONY: all deps kernel kernel-kasan patches check-patches lint-shell lint-rust \
	userspace userspace-static host-test qemu-test test demo bench clean

all: userspace kernel

deps:
	scripts/deps.sh

# Regenerate patches/ from kernel-module/ (the only place the kernel
# sources are edited).
patches: deps
	scripts/gen-patches.sh

# Fails when patches/ differs from what kernel-module/ generates, or when
# checkpatch.pl complains.
check-patches: deps
	scripts/gen-patches.sh --check

kernel: deps
	scripts/build-kernel.sh

# The KASAN + UBSAN variant that qemu-test also boots.
kernel-kasan: deps
	scripts/build-kernel.sh --variant kasan

# shellcheck on every shell script of the repository.
lint-shell: deps
	scripts/lint-shell.sh

userspace: deps
	cd $(USERSPACE) && $(CARGO) build --release --locked

# The static (musl) CLI that `--deploy` uploads:
# userspace/target/x86_64-unknown-linux-musl/release/dirsync.
userspace-static: deps
	scripts/build-static.sh

host-test: deps
	cd $(USERSPACE) && $(CARGO) test --release --locked

# The Rust lint gate: clippy (warnings are errors; the [lints] table of
# userspace/Cargo.toml adds unsafe and docs lints), formatting, no
# import cycle between the modules, and the size limits (files, engine
# functions).
lint-rust: deps
	cd $(USERSPACE) && $(CARGO) clippy --all-targets --locked -- -D warnings
	cd $(USERSPACE) && $(CARGO) fmt --check
	$(USERSPACE)/tools/module-deps.sh >/dev/null
	$(USERSPACE)/tools/size-check.sh >/dev/null

# Boots the default test kernel (every guest test, then the syscall
# microbenchmark) and the KASAN + UBSAN kernel (every guest test).
qemu-test: deps
	qemu/run-tests.sh

test: deps lint-shell lint-rust check-patches host-test qemu-test

demo: deps
	qemu/run-demo.sh

bench: deps
	scripts/bench.sh

clean:
	cd $(USERSPACE) && $(CARGO) clean
	rm -rf build
