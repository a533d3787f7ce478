/chardev
