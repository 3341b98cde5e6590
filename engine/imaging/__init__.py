"""Reading scans: content sniffing, header probing, oriented and reduced decoding."""
