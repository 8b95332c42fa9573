// HTTP/2 wire constants (RFC 9113) shared by the frame reader and detection.

/** Frame types of RFC 9113 §6; any other type is skipped (§5.5). */
export const Http2FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Http2Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** SETTINGS identifiers the reader validates (§6.5.2). */
export const Http2SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The client connection preface (§3.4), sent before the client's first SETTINGS. */
export const HTTP2_CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const HTTP2_FRAME_HEADER_BYTES = 9;
/** SETTINGS_MAX_FRAME_SIZE before any SETTINGS (§6.5.2). */
export const HTTP2_DEFAULT_MAX_FRAME_SIZE = 16384;
/** The largest SETTINGS_MAX_FRAME_SIZE a peer may advertise: 2^24 - 1, the 24-bit length field's maximum. */
export const HTTP2_MAX_FRAME_SIZE_LIMIT = 0xffffff;
/** Default bound of one header block (HEADERS or PUSH_PROMISE plus its CONTINUATIONs), as HTTP/1's head bound. */
export const HTTP2_DEFAULT_MAX_HEADER_BLOCK = 64 * 1024;

/** Whether a SETTINGS value is in range (§6.5.2); unknown identifiers are ignored, so valid. */
export function validSetting(id: number, value: number): boolean {
  switch (id) {
    case Http2SettingId.ENABLE_PUSH:
      return value <= 1;
    case Http2SettingId.INITIAL_WINDOW_SIZE:
      return value <= 0x7fffffff;
    case Http2SettingId.MAX_FRAME_SIZE:
      return value >= HTTP2_DEFAULT_MAX_FRAME_SIZE && value <= HTTP2_MAX_FRAME_SIZE_LIMIT;
    default:
      return true;
  }
}
