package wsframe

// Close reasons: the reason text of every close frame wsdest sends, each
// beside the code it is sent with. They are declared here and never
// written inline, so that docs/protocol.md's table of close codes can be
// checked against them: TestCloseCodeTable (docs_test.go at the repository
// root) fails when a reason, or a code it is sent with, has no row there.
const (
	// ReasonGoingAway (1001): the service is stopping.
	ReasonGoingAway = "going away"
	// ReasonProtocolError (1002): the client broke the WebSocket protocol
	// in a way the parser does not name.
	ReasonProtocolError = "protocol error"
	// ReasonTooSlow (1008): the client's send queue is over its bound.
	ReasonTooSlow = "too slow"
	// ReasonTooManyPings (1008): the client sent over 100 pings in a second.
	ReasonTooManyPings = "too many pings"
	// ReasonNoCredential (1008, and the SSE 401 body): the request carried
	// no credential where wsdest reads one; it says where to put one.
	ReasonNoCredential = "no credential: use ?token=KEY, Authorization: Bearer or Basic"
	// ReasonNotAccepted (1008, and the SSE 401 body): a credential that is
	// not one of the configured ones.
	ReasonNotAccepted = "credential not accepted"
	// ReasonTokenExpired (1008): the client's token reached its exp.
	ReasonTokenExpired = "token expired"
	// ReasonCredentialRevoked (1008): the client's API key was removed
	// from the keys file, or its patterns changed.
	ReasonCredentialRevoked = "credential revoked"
	// ReasonCatchUpFailed (1011): a resuming client's past could not be read.
	ReasonCatchUpFailed = "catch-up failed"

	// What the parser closes a client with (ProtocolError).
	ReasonInvalidUTF8            = "invalid UTF-8 in text message"       // 1007
	ReasonInvalidFrameLength     = "invalid frame length"                // 1002
	ReasonControlTooLong         = "control frame too long"              // 1002
	ReasonMessageTooBig          = "message too big"                     // 1009
	ReasonReservedBits           = "reserved bits set"                   // 1002
	ReasonNotMasked              = "client frame not masked"             // 1002
	ReasonUnexpectedContinuation = "unexpected continuation frame"       // 1002
	ReasonNewMessageInFragmented = "new message inside a fragmented one" // 1002
	ReasonFragmentedControl      = "fragmented control frame"            // 1002
	ReasonUnknownOpcode          = "unknown opcode"                      // 1002
	ReasonInvalidClosePayload    = "invalid close payload"               // 1002
	ReasonInvalidCloseCode       = "invalid close code"                  // 1002
	ReasonCloseReasonNotUTF8     = "close reason not UTF-8"              // 1007
)
