package bench

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// telemetryFields are the members of a telemetry record (AppendTelemetry)
// the projections of a views run keep, beside ts and seq.
var telemetryFields = [...]string{"temperature", "humidity", "pressure", "voltage", "current", "rpm",
	"status", "firmware", "Tags.location", "Tags.line"}

// viewQuery returns the query parameters of client i's view in a run of
// filters distinct ?where= filters and projections distinct ?fields=
// lists ("" when both are 0): client i has filter i mod filters and
// projection (i / filters) mod projections, so that filters x projections
// distinct views are alive when there are as many clients. Every filter
// is true of every record (value.temperature > -1-n, temperature being
// at least 0), so the deliveries expected are those of the same clients
// without views; and every projection keeps ts and seq, which the
// clients measure by.
func viewQuery(i, filters, projections int) string {
	q := url.Values{}
	if filters > 0 {
		q.Set("where", "value.temperature > -"+strconv.Itoa(1+i%filters))
	}
	if projections > 0 {
		j := (i / max(filters, 1)) % projections
		f := []string{"ts", "seq", telemetryFields[j%len(telemetryFields)]}
		if k := j / len(telemetryFields); k > 0 {
			f = append(f, telemetryFields[(j+k)%len(telemetryFields)], "pad"+strconv.Itoa(k))
		}
		q.Set("fields", strings.Join(f, ","))
	}
	return q.Encode()
}

// appendQuery appends the query q to u.
func appendQuery(u, q string) string {
	if q == "" {
		return u
	}
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}

// AppendTelemetry appends a JSON record of size bytes (padded; never below
// what its members need) carrying tsNs and seq, as AppendValue, and the
// numeric and nested members of a sensor's reading, derived from seq, for
// the filters and projections of a views run to read.
func AppendTelemetry(dst []byte, tsNs, seq int64, size int) []byte {
	start := len(dst)
	dst = fmt.Appendf(dst, `{"ts":%d,"seq":%d,"temperature":%d.%02d,"humidity":%d.%d,"pressure":%d.%d,`+
		`"voltage":%d.%03d,"current":%d.%03d,"rpm":%d,"status":"running","firmware":"4.2.17",`+
		`"Tags":{"location":"hall-%d","line":"L%d"},"pad":"`,
		tsNs, seq, seq%50, seq%100, 30+seq%40, seq%10, 950+seq%100, seq%10, 220+seq%20, seq%1000, seq%5, seq%1000,
		1000+seq%2000, seq%7, seq%3)
	for n := size - (len(dst) - start) - 2; n > 0; n-- {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}
