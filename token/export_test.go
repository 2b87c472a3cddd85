package token

// ExpiresAtForTest lets the tests drive both paths of expiresAt.
var ExpiresAtForTest = expiresAt
