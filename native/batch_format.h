/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batch framing: how the addon hands ring-buffer records to JavaScript.
 *
 * The poll thread copies records out of the kernel ring buffer into a batch
 * and hands the batch to the `onBatch(batch, records)` callback as one Buffer
 * (no copy: the Buffer wraps the native memory and frees it when collected).
 * A batch is zero or more frames back to back, one frame per record:
 *
 *   offset  size      field
 *   0       4         length: bytes of the record, u32 little endian
 *   4       4         reserved: always 0
 *   8       length    the record exactly as the BPF program submitted it; it
 *                     starts with its __u32 type tag (enum event_type in
 *                     bpf/socket_trace.h)
 *   8+length  0..7    zero padding up to the next multiple of 8
 *
 * Frames start at multiples of 8 from the start of the batch and the batch
 * memory is at least 8-aligned, so every record starts 8-aligned. The last
 * frame ends exactly at the end of the Buffer, padding included; `records`
 * passed with the batch is the number of frames. Records are in ring-buffer
 * order (the kernel's commit order), and batches are delivered in order.
 *
 * Plain C so a layout test can compile it next to bpf/socket_trace.h.
 */
#ifndef EBPF_OTEL_BATCH_FORMAT_H
#define EBPF_OTEL_BATCH_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_FRAME_HEADER_BYTES 8u
#define BATCH_FRAME_ALIGN 8u

/* Bytes a record of `length` bytes takes in a batch, header and padding included. */
static inline size_t batch_frame_bytes(size_t length)
{
	return BATCH_FRAME_HEADER_BYTES +
	       ((length + (BATCH_FRAME_ALIGN - 1)) & ~(size_t)(BATCH_FRAME_ALIGN - 1));
}

#endif /* EBPF_OTEL_BATCH_FORMAT_H */
