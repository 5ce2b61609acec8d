package apikey_test

import (
	"errors"
	"fmt"

	"github.com/keyward/keyward/apikey"
)

func ExampleGenerate() {
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		panic(err)
	}
	// Printing a Secret never shows the key; Reveal does, once, for its owner.
	fmt.Println(sec.Mode(), len(sec.Reveal()))
	fmt.Println(sec.String() == sec.DisplayPrefix()+"[REDACTED]")
	// Output:
	// test 40
	// true
}

func ExampleParse() {
	for _, raw := range []string{
		"ck_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh",
		"ck_live_4eC39HqLyjWDarjtT1zdp7dc",
		"sk_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh",
	} {
		mode, err := apikey.Parse(raw)
		switch {
		case errors.Is(err, apikey.ErrLength):
			fmt.Println("wrong length")
		case errors.Is(err, apikey.ErrMalformed):
			fmt.Println("malformed:", err)
		default:
			fmt.Println("mode", mode)
		}
	}
	// Output:
	// mode live
	// wrong length
	// malformed: apikey: malformed key: wrong product prefix
}

func ExampleNewFormat() {
	f, err := apikey.NewFormat("acme")
	if err != nil {
		panic(err)
	}
	fmt.Println(f.ModePrefix(apikey.Live))
	mode, err := f.Parse("acme_test_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh")
	fmt.Println(mode, err)
	// Output:
	// acme_live_
	// test <nil>
}

func ExampleHashOf() {
	h := apikey.HashOf("ck_test_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh")
	fmt.Println(len(h), h.Equal(apikey.HashOf("ck_test_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh")))
	// Output: 32 true
}

func ExampleSecret() {
	sec, _ := apikey.Generate(apikey.Live)
	// Every way of printing or encoding a Secret shows the redacted form.
	redacted := sec.DisplayPrefix() + apikey.Redacted
	fmt.Println(fmt.Sprintf("%v|%s|%#v", sec, sec, sec) ==
		redacted+"|"+redacted+"|apikey.Secret("+redacted+")")
	// Output: true
}
