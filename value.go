package usersessions

import "reflect"

// Value returns the value stored under key in s as a T, and whether there
// was one of that type. Values keep their Go type across Save and Load, so
// the T a value was set with is the T to ask for: an int set with Set is
// read back with Value[int], not Value[int64].
//
// It returns the zero T and false when s is nil, when key is missing, and
// when the stored value is not a T (no conversion is attempted). A stored
// nil is returned as the zero T with true when T is an interface, pointer,
// slice, map, function or channel type.
//
//	n, ok := usersessions.Value[int](sess, "cart_items")
func Value[T any](s *Session, key string) (T, bool) {
	var zero T
	if s == nil {
		return zero, false
	}
	v, ok := s.Get(key)
	if !ok {
		return zero, false
	}
	if v == nil {
		switch reflect.TypeFor[T]().Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Slice, reflect.Map, reflect.Func, reflect.Chan:
			return zero, true
		}
		return zero, false
	}
	t, ok := v.(T)
	return t, ok
}
