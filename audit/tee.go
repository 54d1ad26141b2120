package audit

// Tee sends every line to more than one sink (a file and syslog).

// Tee returns a Sink that logs each event to every sink in turn. Log
// returns the first error: a line that one sink could not take is not
// recorded, and what it records must not happen (the other sinks still
// get the line). It is a Checker: Ready is nil only when every sink that
// is a Checker is ready.
func Tee(sinks ...Sink) Sink { return tee(append([]Sink(nil), sinks...)) }

type tee []Sink

func (t tee) Log(e Event) error {
	var first error
	for _, s := range t {
		if err := s.Log(e); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (t tee) Ready() error {
	for _, s := range t {
		if c, ok := s.(Checker); ok {
			if err := c.Ready(); err != nil {
				return err
			}
		}
	}
	return nil
}
