using System.CommandLine;

namespace PgState.Cli.Commands;

internal static class CommonOptions
{
    public static Argument<string[]> Files() => new("FILE")
    {
        Arity = ArgumentArity.OneOrMore,
        Description = "Manifest files, or directories of *.yaml manifests.",
    };

    public static Option<string?> PgHost() => new("--pg-host") { HelpName = "HOST", Description = "Override spec.connection.host (socket directory or host name)." };

    public static Option<int?> PgPort() => new("--pg-port") { HelpName = "PORT", Description = "Override spec.connection.port." };

    public static Option<string?> PgUser() => new("--pg-user") { HelpName = "USER", Description = "Override spec.connection.user." };

    public static Option<string> Format(string description, params string[] allowed)
    {
        var option = new Option<string>("--format") { Description = description, DefaultValueFactory = _ => allowed[0] };
        option.AcceptOnlyFromAmong(allowed);
        return option;
    }
}
