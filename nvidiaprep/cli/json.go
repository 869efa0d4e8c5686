package cli

import (
	"bytes"
	"encoding/json"
	"io"
)

// schemaVersion is the version of the JSON documents described in
// docs/json.md; it changes only when a key changes meaning or goes away.
const schemaVersion = 1

// Envelope opens every JSON document: embed it first in a command's
// document type so that its keys come first.
type Envelope struct {
	SchemaVersion int    `json:"schema_version"`
	Command       string `json:"command"`
	Error         *Error `json:"error"` // null when the command did its work
}

// Error is a failed command's error in its JSON document.
type Error struct {
	Message    string `json:"message"`
	ExitStatus int    `json:"exit_status"`
}

// Envelope returns the envelope of a successful run of the command.
func (c *Call) Envelope() Envelope {
	return Envelope{SchemaVersion: schemaVersion, Command: c.Cmd.Name}
}

// ErrorDocument is the JSON document of a failed command: the envelope
// with its error, and every key of the command's document null.
func ErrorDocument(c *Command, message string, code int) json.RawMessage {
	var b bytes.Buffer
	env, _ := json.Marshal(Envelope{SchemaVersion: schemaVersion, Command: c.Name, Error: &Error{Message: message, ExitStatus: code}})
	b.Write(env[:len(env)-1])
	for _, k := range c.JSONKeys {
		key, _ := json.Marshal(k)
		b.WriteString(",")
		b.Write(key)
		b.WriteString(":null")
	}
	b.WriteString("}")
	return b.Bytes()
}

// WriteJSON prints v as indented JSON with a final newline; HTML characters
// are not escaped (the output is read by people and scripts, not browsers).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if raw, ok := v.(json.RawMessage); ok {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return err
		}
		out.WriteByte('\n')
		_, err := w.Write(out.Bytes())
		return err
	}
	return enc.Encode(v)
}
