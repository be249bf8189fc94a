package azure

// V1IssuerOf exposes v1Issuer to the external tests: the sovereign clouds'
// token services cannot be reached from a test, only named.
var V1IssuerOf = v1Issuer
