package expr

// NodeKind is the kind of a syntax tree node.
type NodeKind int

// Node kinds.
const (
	// LiteralNode is a number, string or bool literal.
	LiteralNode NodeKind = NodeKind(nodeLiteral)
	// IdentNode is an identifier.
	IdentNode NodeKind = NodeKind(nodeIdent)
	// UnaryNode is !, - or + applied to X.
	UnaryNode NodeKind = NodeKind(nodeUnary)
	// BinaryNode is X Op Y.
	BinaryNode NodeKind = NodeKind(nodeBinary)
)

// Node is a read-only view of one node of a parsed expression's syntax
// tree, for callers that evaluate expressions their own way (internal/gate
// records every comparison of an evaluation gate).
type Node struct {
	src string
	n   *node
}

// Root returns the root of e's syntax tree.
func (e *Expr) Root() Node { return Node{src: e.src, n: e.root} }

// Kind is the node's kind.
func (n Node) Kind() NodeKind { return NodeKind(n.n.kind) }

// Op is the operator of a UnaryNode or BinaryNode, e.g. "&&" or ">=".
func (n Node) Op() string { return n.n.op }

// X is the operand of a UnaryNode or the left operand of a BinaryNode.
func (n Node) X() Node { return Node{src: n.src, n: n.n.x} }

// Y is the right operand of a BinaryNode.
func (n Node) Y() Node { return Node{src: n.src, n: n.n.y} }

// Path is an IdentNode's identifier, e.g. "champion.auc".
func (n Node) Path() string { return n.n.path }

// Value is a LiteralNode's value: a float64, a string or a bool.
func (n Node) Value() any { return n.n.val.any() }

// Text is the node's source text without enclosing parentheses.
func (n Node) Text() string { return n.src[n.n.start:n.n.end] }

// OuterText is the node's source text with its enclosing parentheses, if
// any: "(a + 1)" for the left operand of "(a + 1) * 2".
func (n Node) OuterText() string { return n.src[n.n.ostart:n.n.oend] }

// Pos is the 1-based column (in characters) of the node's first character.
func (n Node) Pos() int { return column(n.src, n.n.start) }
