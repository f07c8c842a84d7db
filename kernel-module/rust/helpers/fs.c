// SPDX-License-Identifier: GPL-2.0

/* dirsync-series: begin dir */
#include <linux/file.h>
/* dirsync-series: end dir */
#include <linux/fs.h>
/* dirsync-series: begin dir */
#include <linux/mount.h>
/* dirsync-series: end dir */

bool rust_helper_vfs_empty_path(int dfd, const char __user *path)
{
	return vfs_empty_path(dfd, path);
}
/* dirsync-series: begin dir */

bool rust_helper_d_managed(const struct dentry *dentry)
{
	return d_managed(dentry);
}

bool rust_helper_d_is_negative(const struct dentry *dentry)
{
	return d_is_negative(dentry);
}

struct file *rust_helper_fd_file(struct fd f)
{
	return fd_file(f);
}

void rust_helper_fdput_pos(struct fd f)
{
	fdput_pos(f);
}

struct mnt_idmap *rust_helper_mnt_idmap(const struct vfsmount *mnt)
{
	return mnt_idmap(mnt);
}
/* dirsync-series: end dir */
