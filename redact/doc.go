// Package redact keeps API keys out of logs: [NewHandler] wraps a
// [log/slog] handler and redacts everything shaped like a key before the
// record reaches it.
//
// Servers log request headers, URLs and errors by mistake, and a key in a
// log is a leaked key. Wrap the handler once, at start-up:
//
//	logger := slog.New(redact.NewHandler(slog.NewJSONHandler(os.Stderr, nil)))
//	slog.SetDefault(logger)
//
// and a line such as
//
//	logger.Info("request", "header", r.Header, "err", err)
//
// prints "Bearer ck_live_4eC39H[REDACTED]" where the key was. A redacted key
// keeps its display prefix, as [apikey.Format.Redact] does, so the log still
// says which key it was. Pass the formats of your products to redact their
// keys ([apikey.NewFormat]); with none, the handler redacts keys of
// [apikey.Default].
//
// # What is redacted
//
// The message, every attribute key and group name, and every attribute
// value, in groups at any depth, whether it was given with the record or
// added with [slog.Logger.With] and [slog.Logger.WithGroup]:
//
//   - strings, []byte and named types of either;
//   - errors, by their Error text: an error holding a key is replaced by
//     its redacted text, and the error itself does not reach the handler;
//   - [slog.LogValuer] values, which are resolved and replaced by what they
//     resolve to, redacted, groups included;
//   - maps and slices of strings ([http.Header], [url.Values],
//     map[string]string, []string), replaced by a redacted copy of the same
//     type when they hold a key, so that they print as before;
//   - values of any other type, such as a [fmt.Stringer], a struct or a
//     [*url.URL]: each form a handler may print them in (fmt's "%+v" as the
//     text handler does, the JSON encoding as the JSON handler does, which
//     follows pointers that "%+v" prints as addresses, the Error text and
//     MarshalText) is checked, and a value with a key in any of them is
//     replaced by the redacted text it would be logged as.
//
// Redaction is as eager as [apikey.Format.Redact]: mistyped, truncated and
// over-long keys lose their secret part too.
//
// # What is not
//
//   - Keys of formats not given to [NewHandler].
//   - Keys split across attributes, across records, or by the caller's own
//     formatting (a key logged in two halves, or with a space inside).
//   - Encoded keys: base64 (a []byte nested in a struct is base64 in JSON
//     and a list of numbers in "%+v"), percent-encoding ("ck%5Flive%5F..."),
//     hex, a hash or an encryption of the key.
//   - Keys run into a longer token, such as "xck_live_...": by the rule of
//     [apikey.Format.Find], they are not keys.
//   - Attributes added to the wrapped handler before it was wrapped, such as
//     slog.NewJSONHandler(w, nil).WithAttrs(...) given to NewHandler: the
//     wrapper never sees them. Wrap first, then add attributes.
//   - What the wrapped handler adds itself, such as the output of its
//     ReplaceAttr function, and values it prints in ways the standard
//     handlers do not (by reflection over unexported fields behind
//     pointers, say).
//   - Logs that do not go through the handler: the log package (unless
//     [slog.SetDefault] routes it here), panics and stack traces, fmt.Print.
//
// # Cost
//
// A record with nothing to redact is passed on as it is: checking it
// allocates nothing when its values are strings, numbers, times, errors,
// []byte, or the maps and slices above, and costs a scan of each string.
// Values of other types are formatted to be checked (with fmt and
// encoding/json, into pooled buffers), as the wrapped handler formats them
// again. A record that holds a key, or a LogValuer, is copied with its
// redacted or resolved values.
package redact
