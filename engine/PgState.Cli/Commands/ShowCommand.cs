using System.CommandLine;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;

namespace PgState.Cli.Commands;

/// <summary>pgstate show plan.json…: render saved plans as text, markdown or JSON.</summary>
internal sealed class ShowCommand(IOContext io)
{
    public Command Build()
    {
        var files = new Argument<string[]>("PLAN") { Arity = ArgumentArity.OneOrMore, Description = "Plans written by pgstate plan --out." };
        var format = CommonOptions.Format("text, markdown or json.", "text", "markdown", "json");
        var command = new Command("show", "Render saved plans. Several hosts' plans (plans/*.json) become one fleet review: a table per host, then each host's plan; as markdown, one pull-request comment.") { files, format };
        command.SetAction(result =>
        {
            var plans = result.GetValue(files)!.SelectMany(f => SavedPlanFormat.Read(f).Plans).ToList();
            var outputFormat = Enum.Parse<OutputFormat>(result.GetValue(format)!, ignoreCase: true);
            io.Output.Write(plans.Count > 1 ? FleetRenderer.Render(plans, outputFormat, io.Colour) : PlanRenderer.Render(plans, outputFormat, io.Colour));
            return ExitCodes.Ok;
        });
        return command;
    }
}
