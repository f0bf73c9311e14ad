package service

import (
	"fmt"

	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/view"
)

// newViews creates the registry of the clients' views (?where=,
// ?fields=), bounded by MAX_VIEWS and MAX_VIEWS_PER_IP.
func (s *Service) newViews() error {
	var err error
	s.views, err = view.New(view.Config{MaxViews: s.cfg.Edge.MaxViews, MaxViewsPerOwner: s.cfg.Edge.MaxViewsPerIP, Logger: s.log})
	if err != nil {
		return fmt.Errorf("views: %w", err)
	}
	return nil
}

// serverViews adapts a view.Registry to server.Views.
type serverViews struct{ r *view.Registry }

var _ server.Views = serverViews{}

// Acquire implements server.Views.
func (v serverViews) Acquire(where, fields string, shape message.Shape, owner string) (hub.View, error) {
	vw, err := v.r.Acquire(where, fields, shape, owner)
	if err != nil {
		return nil, err // not a nil *view.View in a non-nil hub.View
	}
	return vw, nil
}

// Release implements server.Views.
func (v serverViews) Release(vw hub.View, owner string) { v.r.Release(vw.(*view.View), owner) }
