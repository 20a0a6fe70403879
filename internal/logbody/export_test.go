package logbody

// Dictionary returns the dictionary file of a format, for tests.
func Dictionary(format byte) []byte {
	if format == FormatDict2 {
		return dict2File
	}
	return nil
}
