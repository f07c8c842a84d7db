// SPDX-License-Identifier: GPL-2.0

/* dirsync-series: begin dir */
#include <linux/file.h>
/* dirsync-series: end dir */
#include <linux/cred.h>
#include <linux/fs.h>
/* dirsync-series: begin dir */
#include <linux/sched.h>
#include <linux/sched/signal.h>
/* dirsync-series: end dir */

bool rust_helper_vfs_empty_path(int dfd, const char __user *path)
{
	return vfs_empty_path(dfd, path);
}

struct user_namespace *rust_helper_current_user_ns(void)
{
	return current_user_ns();
}

uid_t rust_helper_from_kuid_munged(struct user_namespace *to, kuid_t kuid)
{
	return from_kuid_munged(to, kuid);
}

gid_t rust_helper_from_kgid_munged(struct user_namespace *to, kgid_t kgid)
{
	return from_kgid_munged(to, kgid);
}
/* dirsync-series: begin dir */

bool rust_helper_d_can_lookup(const struct dentry *dentry)
{
	return d_can_lookup(dentry);
}

struct file *rust_helper_fd_file(struct fd f)
{
	return fd_file(f);
}

void rust_helper_fdput_pos(struct fd f)
{
	fdput_pos(f);
}

bool rust_helper_fatal_signal_pending(struct task_struct *p)
{
	return fatal_signal_pending(p);
}

int rust_helper_cond_resched(void)
{
	return cond_resched();
}
/* dirsync-series: end dir */
