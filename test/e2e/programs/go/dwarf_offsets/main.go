// An independent oracle for src/capture/elf/dwarf.ts: the member offsets of
// the named structs in a binary's DWARF, read with Go's own debug/dwarf.
//
//	dwarf_offsets <binary> <struct>...  ->  {"runtime.g":{"goid":152,...},...}
package main

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	f, err := elf.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	d, err := f.DWARF()
	if err != nil {
		panic(err)
	}
	want := map[string]bool{}
	for _, s := range os.Args[2:] {
		want[s] = true
	}
	out := map[string]map[string]int64{}
	r := d.Reader()
	for len(out) < len(want) {
		e, err := r.Next()
		if err != nil {
			panic(err)
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if !want[name] || out[name] != nil {
			continue
		}
		t, err := d.Type(e.Offset)
		if err != nil {
			panic(err)
		}
		members := map[string]int64{}
		for _, m := range t.(*dwarf.StructType).Field {
			members[m.Name] = m.ByteOffset
		}
		out[name] = members
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
