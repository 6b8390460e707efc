package masterkey

// Seals exposes seals to the package's external tests.
var Seals = seals
