// Package rc implements the receiving and sending side of RC (RongCloud) RTC
// Cloud Recording status callbacks, using only the standard library, so any Go
// server can import it the way it imports a payment provider's webhook package.
//
// RC posts a JSON callback to the customer's server at each step of a cloud
// recording: recording started (type 1), a file segment written (type 2),
// recording ended (type 3) and a file uploaded to the customer's storage
// (type 4). Every callback carries appKey, recordId, roomId, sessionId, userId
// (empty in the mix modes), mode (0-6), extra, code (200 is success),
// errorMessage and a Unix-millisecond timestamp; start callbacks add config and
// output, the others add output.fileName and fileSize or fileUrl.
//
// The package offers, from the lowest level up:
//
//   - [Parse]: strict about what identifies a callback (a JSON object with type,
//     recordId and appKey, each failure a typed error), lenient about the rest
//     (unknown types, modes and fields, nulls, numbers sent as strings), with
//     every oddity reported in [Callback.Warnings] and the raw body kept.
//   - [Sign], [Signer] and [Verifier]: RC's signature rule,
//     lower-case hex SHA1(appSecret + nonce + timestamp), carried in headers
//     (plain or RC- prefixed) or in the query. RC's signature does not cover the
//     body, so the Verifier adds two checks of its own: a timestamp tolerance and
//     a replay memory that tells a redelivery of the same body (accepted) from
//     a captured signature reused with another body (rejected).
//   - [ParseFileName] and [FileName]: RC's recording file naming rules.
//   - [Handler]: a ready-made net/http receiver that reads, verifies and parses
//     callbacks and answers RC the way it expects (200 only on success, so RC
//     retries anything else).
//
// Errors are sentinel values and typed errors meant for errors.Is and
// errors.As; [StatusCode] and [ErrorCode] map them to HTTP answers.
package rc
