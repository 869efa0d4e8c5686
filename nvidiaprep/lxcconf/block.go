package lxcconf

import "strings"

// Block returns the lines of nvidiaprep's block (without its markers), nil
// when config has none: what pre-start gave the container at its start.
func Block(config []byte) ([]string, error) {
	start, end, err := findBlock(config)
	if err != nil || start < 0 {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(config[start:end]), "\n"), "\n")
	return lines[1 : len(lines)-1], nil
}
