package configapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/httpapi"
)

// bindStrict reads the body and decodes it into v like httpapi.BindStrict,
// after checking its object keys exactly: encoding/json matches keys to
// fields case-insensitively and lets a later duplicate key win, so
// {"ID": "x"} would fill id and {"api_key": "a", "api_key": "b"} would store
// a value a reviewer of the request did not see first. Both are refused with
// a 400 naming the key.
func bindStrict(c echo.Context, v any) error {
	b, err := httpapi.ReadBody(c)
	if err != nil {
		return err
	}
	if err := checkKeys(b, reflect.TypeOf(v)); err != nil {
		return err
	}
	return httpapi.DecodeStrict(b, v)
}

// checkKeys walks the JSON document b against the Go type t and refuses keys
// that are not exactly a field's json name, and duplicate keys. Syntax errors
// are left to the decoder, which names them better.
func checkKeys(b []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := walkValue(dec, t, "")
	var ke *keyError
	if errors.As(err, &ke) {
		return httpapi.BadRequest("%s", ke.msg)
	}
	return nil
}

type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

// walkValue consumes one JSON value. t is the type it decodes into (nil: not
// checked, e.g. beyond the request types).
func walkValue(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walkValue(dec, elem, path+"[]"); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			name := key
			if path != "" {
				name = path + "." + key
			}
			if seen[key] {
				return &keyError{fmt.Sprintf("duplicate field %s", quote(name))}
			}
			seen[key] = true
			var ft reflect.Type
			if fields != nil {
				var known bool
				if ft, known = fields[key]; !known {
					return &keyError{fmt.Sprintf("unknown field %s", quote(name))}
				}
			}
			if err := walkValue(dec, ft, name); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// jsonFields maps the exact json names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
