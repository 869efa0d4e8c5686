package main

import (
	"fmt"
	"path/filepath"

	"nvidiaprep/integration/aptrepo"
)

func main() {
	cache := "/var/cache/nvidiaprep-test"
	debs, err := aptrepo.FetchFrom(cache, filepath.Join(cache, "rootfs-trixie"), aptrepo.Source{Suite: "trixie", Components: []string{"main"}}, "docker.io")
	for _, d := range debs {
		fmt.Println(filepath.Base(d))
	}
	fmt.Println(len(debs), err)
}
