package logbody

// Dictionary returns the dictionary of a format, for tests.
func Dictionary(format byte) []byte {
	if format == FormatDict1 {
		return dict1
	}
	return nil
}
