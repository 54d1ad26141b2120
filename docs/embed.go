// Package docs holds the reference pages that keyhole's programs serve
// as they are written here, so that what a program serves and what this
// directory says are one text.
package docs

import _ "embed"

// Scripts is the script API reference, scripts.md.
//
//go:embed scripts.md
var Scripts string
