package fuse

// Maximum file write size we are prepared to receive from the kernel.
//
// Linux 4.2.0 has been observed to cap this value at 128kB
// (FUSE_MAX_PAGES_PER_REQ=32, 4kB pages).
// ipcfs: 1 MiB (upstream: 128 KiB), with maxPages pages a request, so that
// a write(2) of up to 255 pages and a byte is always one WRITE.
const maxWrite = 1 << 20

// maxPages is the most pages one request may carry; the kernel's limit
// (FUSE_MAX_MAX_PAGES) is 256. ipcfs: added.
const maxPages = 256
