// Package channels implements the message queue behind an ipcfs channel's
// msg file: bounded, FIFO, with blocking that does not need a goroutine per
// waiter, readiness for poll, hangup and close. It knows nothing of FUSE.
//
// # Messages
//
// A message is a non-empty byte slice. [Channel.Send] takes ownership of the
// slice it is given; the message handed to a receiver is owned by that
// receiver. Order is FIFO per channel, and each message is received once.
//
// # Waiting
//
// A send or receive that cannot complete at once parks its [Waiter] in the
// channel instead of blocking the calling goroutine. The waiter's done
// function is called later, exactly once, by whichever goroutine completes it
// (a Send hands a message straight to the first parked receiver; a Receive
// that frees room admits parked senders; Hangup, Close and Flush settle
// the rest). [Waiter.Cancel] withdraws a waiter that has not completed; it
// reports whether it did, and then done is never called. This is what lets
// a FUSE daemon hold a blocked READ as a pending request and answer it from
// the WRITE that brings its message, or with EINTR when the kernel
// interrupts it.
//
// # Readiness
//
// [Channel.Poll] reports whether a receive or a send would complete without
// waiting, and arms a [Watch] whose wake function is called (once) when that
// may have changed. Arming and reporting are atomic with respect to the
// changes, so no wakeup is lost between them.
//
// # Locking
//
// Each Channel has one mutex. Done and wake functions are always called
// without it held, so they may call back into the channel.
package channels
