package inventory_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/keyhole-dev/keyhole/client/inventory"
)

func ExampleLoad() {
	inv, err := inventory.Load("testdata/fleet.ini")
	if err != nil {
		log.Fatal(err)
	}
	hosts, err := inv.Select("gate:behind")
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range hosts {
		fmt.Printf("%s: dial %s@%s port %d jump %q\n", h.Name, h.User, h.Addr, h.Port, h.Jump)
	}
	// Output:
	// gw: dial deploy@192.0.2.50 port 5555 jump ""
	// deep.corp.test: dial deploy@deep.corp.test port 0 jump "jump@gw.corp.test"
}

func ExampleInventory_Select() {
	inv, err := inventory.Parse("hosts.ini", []byte(`
[web]
web[01:04]

[db]
db-[a:b]
web04

[canary]
web01
`))
	if err != nil {
		log.Fatal(err)
	}
	for _, pattern := range []string{"web:db", "web:&db", "web:!canary", "~web0[12]", "web:!cnary"} {
		hosts, err := inv.Select(pattern)
		var nm *inventory.NoMatchError
		if errors.As(err, &nm) {
			fmt.Printf("%-12s error, close to %v\n", pattern, nm.Close)
			continue
		}
		fmt.Printf("%-12s", pattern)
		for _, h := range hosts {
			fmt.Printf(" %s", h.Name)
		}
		fmt.Println()
	}
	// Output:
	// web:db       web01 web02 web03 web04 db-a db-b
	// web:&db      web04
	// web:!canary  web02 web03 web04
	// ~web0[12]    web01 web02
	// web:!cnary   error, close to [canary]
}
