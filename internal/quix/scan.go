package quix

import (
	"fmt"

	"github.com/wsdest/wsdest/internal/jsonscan"
)

// maxDepth bounds nesting in Quix payloads so that a hostile payload cannot
// exhaust the stack; orjson, which Quix Streams uses, stops at a similar
// depth.
const maxDepth = 1000

// newScanner returns the JSON scanner the decoder reads a payload with.
func newScanner(b []byte) jsonscan.Scanner { return jsonscan.New(b, maxDepth) }

// shapeError reports valid JSON that is not the shape Quix defines. Like
// jsonscan.SyntaxError it carries only an offset, never the bytes, so that
// payload content cannot leak into logs.
type shapeError struct {
	off int
	msg string
}

func (e *shapeError) Error() string { return fmt.Sprintf("at offset %d: %s", e.off, e.msg) }

// errShape reports valid JSON of the wrong shape.
func errShape(off int, msg string) error { return &shapeError{off: off, msg: msg} }

// errTrailing reports bytes after the payload's one JSON value.
func errTrailing(off int) error { return &jsonscan.SyntaxError{Offset: off, Msg: "data after payload"} }
