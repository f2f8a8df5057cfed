"""Every file format Netweaver reads and writes. Qt-free; depends only on `core`."""
