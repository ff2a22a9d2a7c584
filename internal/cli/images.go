package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/containers"
)

func newImagesCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build Kiln's container images through the Docker Engine API",
	}
	var tag, dockerfile string
	build := &cobra.Command{
		Use:   "build DIR",
		Short: "Build an image from a directory (its Dockerfile), without pulling anything",
		Long: `Build an image from DIR through the Docker Engine API with the classic builder.
Nothing is pulled: use FROM scratch (static binaries) or images already present.
"make images" uses this to build kiln/trainer:dev from containers/trainer.`,
		Example: "  kiln images build build/trainer -t kiln/trainer:dev -f Dockerfile.offline",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if tag == "" {
				return &exitError{code: 2, err: errors.New("--tag is required, e.g. -t kiln/trainer:dev")}
			}
			d, err := containers.NewDocker(ctx, containers.DockerOptions{})
			if err != nil {
				return err
			}
			defer d.Close()
			id, err := containers.BuildImage(ctx, d.Client(), containers.BuildOptions{ContextDir: args[0], Dockerfile: dockerfile, Tag: tag, Log: cfg.stderr})
			if err != nil {
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]string{"tag": tag, "id": id})
			}
			fmt.Fprintf(cfg.stdout, "built %s (%s)\n", tag, id)
			return nil
		},
	}
	build.Flags().StringVarP(&tag, "tag", "t", "", "image tag, e.g. kiln/trainer:dev (required)")
	build.Flags().StringVarP(&dockerfile, "file", "f", "Dockerfile", "Dockerfile name inside DIR")
	cmd.AddCommand(build, newImagesImportCmd(cfg))
	return cmd
}

func newImagesImportCmd(cfg *Config) *cobra.Command {
	var tag string
	var changes []string
	imp := &cobra.Command{
		Use:   "import TARBALL",
		Short: "Create an image from a root file system tarball, without a registry",
		Long: `Create an image from a root file system tarball through the Docker Engine API
(what "docker import" does). "make image-xgboost" uses this to turn a debootstrapped
Debian with python3-xgboost into kiln/xgboost-base:dev, then "kiln images build" adds
the trainer on top.`,
		Example: "  kiln images import build/xgboost-rootfs.tar -t kiln/xgboost-base:dev -c 'ENV LANG=C.UTF-8'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if tag == "" {
				return &exitError{code: 2, err: errors.New("--tag is required, e.g. -t kiln/xgboost-base:dev")}
			}
			d, err := containers.NewDocker(ctx, containers.DockerOptions{})
			if err != nil {
				return err
			}
			defer d.Close()
			id, err := containers.ImportImage(ctx, d.Client(), containers.ImportOptions{Tarball: args[0], Ref: tag, Changes: changes, Log: cfg.stderr})
			if err != nil {
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]string{"tag": tag, "id": id})
			}
			fmt.Fprintf(cfg.stdout, "imported %s (%s)\n", tag, id)
			return nil
		},
	}
	imp.Flags().StringVarP(&tag, "tag", "t", "", "image tag, e.g. kiln/xgboost-base:dev (required)")
	imp.Flags().StringArrayVarP(&changes, "change", "c", nil, "Dockerfile instruction to apply to the image's configuration (repeatable)")
	return imp
}
