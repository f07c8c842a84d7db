// SPDX-License-Identifier: GPL-2.0

#include <linux/fs.h>

bool rust_helper_vfs_empty_path(int dfd, const char __user *path)
{
	return vfs_empty_path(dfd, path);
}
