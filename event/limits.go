package event

// MaxBytes is the largest message d accepts.
func (d *Decoder) MaxBytes() int { return d.maxBytes }
