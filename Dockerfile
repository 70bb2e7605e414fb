# dpiawatch: a static binary on a distroless base, run as non-root.
# Build: docker build -t dpiawatch .   (docker compose up builds it too)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dpiawatch ./cmd/dpiawatch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dpiawatch /usr/local/bin/dpiawatch
# The DPIA registers, laid out as in the repository so that relative paths
# in deploy/dpiawatch.yaml resolve the same inside and outside the image.
COPY configs/dpia /etc/dpiawatch/configs/dpia
COPY deploy/dpiawatch.yaml /etc/dpiawatch/deploy/dpiawatch.yaml
USER nonroot:nonroot
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/dpiawatch"]
CMD ["run", "--config", "/etc/dpiawatch/deploy/dpiawatch.yaml"]
