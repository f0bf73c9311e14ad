# wsdest: multi-stage build of a static binary into a minimal, non-root image.
# Quix Cloud builds this file (library.json "EntryPoint", app.yaml
# "dockerfile"); `docker build -t wsdest .` does the same anywhere.
# ./test.sh runs the go build line below exactly as written, so it cannot rot.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/wsdest ./cmd/wsdest

# distroless/static: CA certificates (Kafka TLS, the Quix Portal API) and
# tzdata, no shell, no package manager; user 65532 (nonroot).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wsdest /usr/local/bin/wsdest
USER 65532:65532
ENV PORT=8000
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/wsdest"]
