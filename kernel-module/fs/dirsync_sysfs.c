// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/dirsync: how userspace learns that dirsync_stat(2) exists,
 * its number and its ABI version, without executing a number that belongs
 * to another system call on other kernels.
 * dirsync-series: begin readdir
 * The same for the number of dirsync_readdir(2).
 * dirsync-series: end readdir
 * See
 * Documentation/ABI/testing/sysfs-kernel-dirsync.
 */

#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <asm/unistd.h>
#include <uapi/linux/dirsync.h>

static ssize_t syscall_nr_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", __NR_dirsync_stat);
}

static struct kobj_attribute syscall_nr_attr = __ATTR_RO(syscall_nr);

static ssize_t abi_version_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", DIRSYNC_ABI_VERSION);
}

static struct kobj_attribute abi_version_attr = __ATTR_RO(abi_version);
/* dirsync-series: begin readdir */

static ssize_t readdir_syscall_nr_show(struct kobject *kobj,
				       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", __NR_dirsync_readdir);
}

static struct kobj_attribute readdir_syscall_nr_attr =
	__ATTR_RO(readdir_syscall_nr);
/* dirsync-series: end readdir */

static struct attribute *dirsync_attrs[] = {
	&syscall_nr_attr.attr,
	&abi_version_attr.attr,
/* dirsync-series: begin readdir */
	&readdir_syscall_nr_attr.attr,
/* dirsync-series: end readdir */
	NULL,
};

static const struct attribute_group dirsync_attr_group = {
	.name = "dirsync",
	.attrs = dirsync_attrs,
};

static int __init dirsync_sysfs_init(void)
{
	return sysfs_create_group(kernel_kobj, &dirsync_attr_group);
}
fs_initcall(dirsync_sysfs_init);
